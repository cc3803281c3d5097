//! Prints what `gobin` reads from a Go binary (debugging aid).
use tracer_user::gobin::GoBinary;

fn main() {
    let path = std::env::args().nth(1).expect("usage: gobin_dump BIN");
    let bin = GoBinary::open(path.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    println!("{:#?}", bin.build_info());
    println!("module data: {:x?}", bin.module_data());
}
