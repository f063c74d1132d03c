// Rebuild when the schema changes: `sqlx::migrate!` embeds it at compile time.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
