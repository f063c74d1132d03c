//! A TCP proxy a test can cut: a worker reaches PostgreSQL through it, and an outage is every
//! connection through it dropped and new ones refused until it is restored. It runs on a
//! runtime of its own ([`crate::on_own_runtime`]).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::net::{TcpListener, TcpStream};

pub struct CutProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl CutProxy {
    /// Forward connections to `target` (host:port).
    pub fn start(target: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let cut = Arc::new(AtomicBool::new(false));
        let (target, is_cut) = (target.to_owned(), cut.clone());
        crate::on_own_runtime("proxy", move || async move {
            let listener = TcpListener::from_std(listener).expect("the proxy's listener");
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                tokio::spawn(forward(client, target.clone(), is_cut.clone()));
            }
        });
        Self { addr, cut }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Drop every connection through the proxy and refuse new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn forward(mut client: TcpStream, target: String, cut: Arc<AtomicBool>) {
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let watch = async {
        while !cut.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = watch => {}
    }
}
