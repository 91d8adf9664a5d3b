//! Writes every CRD of this workspace to `crds/yaml/` (or the directory given as argument).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml"));
    std::fs::create_dir_all(&out_dir)?;
    for (file_name, crd) in crds::all_crds() {
        let path = out_dir.join(file_name);
        std::fs::write(&path, crds::render_crd_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
