//! docs/openapi.yaml is a valid OpenAPI 3 document, checked by an independent validator.

use std::path::Path;
use std::process::Command;

#[test]
fn the_api_description_is_valid_openapi() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml");
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&spec)
        .output()
        .expect("python3 is needed: install Python 3 (scripts/test does)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "the validator is missing: run `python3 -m pip install openapi-spec-validator` \
         (scripts/test installs it)\n{text}"
    );
    assert!(out.status.success(), "{}: {text}", spec.display());
}
