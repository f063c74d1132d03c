//! `inbox-sql`: print the inbox page statement the API runs, as a pgbench script (a random
//! user of 1..=USERS, the first page of 20), so that `scripts/bench-api` measures PostgreSQL
//! running exactly the API's SQL as its baseline.
//!
//!   inbox-sql USERS

fn main() {
    let users: i64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("usage: inbox-sql USERS");
    // The API asks for one row more than the page, to know whether another page follows.
    let sql = herald_store::inbox::page_sql()
        .replace("$1", ":uid")
        .replace("$2::bigint", "NULL::bigint")
        .replace("$2", "NULL::bigint")
        .replace("$3", "0")
        .replace("$4", "21");
    let one_line: Vec<&str> = sql.split_whitespace().collect();
    println!("\\set uid random(1, {users})");
    println!("{};", one_line.join(" "));
}
