// `sqlx::migrate!` embeds the migrations at compile time; without this, editing one would
// not rebuild the crate (cargo cannot see files a proc macro reads on stable).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
