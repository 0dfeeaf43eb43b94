//! Rewrites `data/esimerkkila/` from kunta's seeded example generator.
//!
//! ```sh
//! cargo run --example generate_example
//! ```

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/esimerkkila");
    std::fs::create_dir_all(&dir)?;
    for (name, content) in kunta::example::generate(kunta::example::SEED) {
        std::fs::write(dir.join(name), content)?;
        println!("wrote {}", dir.join(name).display());
    }
    Ok(())
}
