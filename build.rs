//! Generates the gRPC service from `proto/` and the descriptor set that server reflection
//! serves, so that `grpcurl` works without the proto files.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("render_node_descriptor.bin"))
        .compile_protos(&["proto/render_node/v1/render_node.proto"], &["proto"])?;
    Ok(())
}
