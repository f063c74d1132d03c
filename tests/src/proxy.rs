//! A TCP proxy a test can cut: a worker reaches PostgreSQL through it, and an outage is every
//! connection through it dropped and new ones refused until it is restored. It can also hold
//! every byte for a while each way, as a database in another region does. It runs on a
//! runtime of its own ([`crate::on_own_runtime`]).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

pub struct CutProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl CutProxy {
    /// Forward connections to `target` (host:port).
    pub fn start(target: &str) -> Self {
        Self::with_delay(target, Duration::ZERO)
    }

    /// Forward connections to `target`, each byte arriving `delay` after it was sent, each
    /// way (a round trip takes twice `delay`).
    pub fn with_delay(target: &str, delay: Duration) -> Self {
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
                tokio::spawn(forward(client, target.clone(), is_cut.clone(), delay));
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

async fn forward(client: TcpStream, target: String, cut: Arc<AtomicBool>, delay: Duration) {
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let watch = async {
        while !cut.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both = async {
        tokio::join!(
            pipe(client_read, server_write, delay),
            pipe(server_read, client_write, delay)
        )
    };
    tokio::select! {
        _ = both => {}
        () = watch => {}
    }
}

/// Copy `from` to `to`, each chunk written `delay` after it was read, in order.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
