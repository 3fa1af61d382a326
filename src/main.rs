//! The `render-node` binary: parses the command line and calls the library.

fn main() {
    let _ = render_node::project::Fps::from_f64(30.0);
}
