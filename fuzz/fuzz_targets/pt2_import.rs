//! Fuzzes the archive reader and lowering: any bytes must give an archive or an error, never a
//! panic. Seed it with the fixture archives (`fuzz/seed.sh`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.pt2");
    if let Ok(archive) = etpkg::pt2::Archive::from_bytes(name, data.to_vec()) {
        for model in archive.models() {
            let _ = etpkg::pt2::import_model(&archive, &model);
        }
    }
});
