// `sqlx::migrate!` embeds the migrations at compile time; on stable Rust it
// cannot tell Cargo to watch them, so a changed migration would be missed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
