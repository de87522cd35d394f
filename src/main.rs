//! `smyth`: a local AWS Lambda development server.

mod apigw;

fn main() {
    println!("smyth {}", env!("CARGO_PKG_VERSION"));
}
