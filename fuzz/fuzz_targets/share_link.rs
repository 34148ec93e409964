//! Fuzzes share-link decoding and spec validation: base64url → raw deflate → JSON → spec.
//!
//! The first input byte picks the layer the rest reaches. Even: the rest is link text (lossy
//! UTF-8), decoded as the page and the CLI decode a link. Odd: the rest is JSON, deflated and
//! base64url-encoded here first, so that the fuzzer spends its time in the JSON and validation
//! layers instead of having to build valid deflate streams. Either way decoding returns `Ok` or
//! `Err` without panicking, and an accepted spec survives its own round trip: encoding it and
//! decoding again gives the same spec and the same hash. Run with `-malloc_limit_mb` to check
//! that no single allocation exceeds the decoder's cap (see fuzz/README.md).

#![no_main]

use std::io::Write;

use base64::Engine as _;
use hawthorne_probe::ExperimentSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(rest).expect("writing to a Vec cannot fail");
        let deflated = enc.finish().expect("writing to a Vec cannot fail");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(deflated)
    };
    if let Ok(spec) = ExperimentSpec::decode(&text) {
        let again = ExperimentSpec::decode(&spec.encode()).expect("an accepted spec decodes from its own encoding");
        assert_eq!(again, spec, "the round trip changed the spec");
        assert_eq!(again.hash(), spec.hash());
    }
});
