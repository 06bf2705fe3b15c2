//! Decoding a large JSON inference body costs about the tensor it yields, not a generic JSON
//! tree (which held ~12 bytes of memory per byte of payload: a 45 MB body cost ~560 MB).
//! Alone in its test binary, so no other test's allocations move the high-water mark.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(target_os = "linux")]
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn a_large_json_body_decodes_in_about_the_memory_of_its_tensor() {
    use std::fmt::Write;

    use bytes::Bytes;
    use mlops_serve::codec::decode_request;

    let rows = 1_000_000usize;
    let mut text = String::with_capacity(rows * 40 + 200);
    text.push_str(r#"{"inputs":[{"name":"x","datatype":"FP32","shape":["#);
    write!(text, "{rows},4").unwrap();
    text.push_str(r#"],"data":["#);
    for r in 0..rows {
        if r > 0 {
            text.push(',');
        }
        // Nested rows, as clients send them.
        write!(text, "[{}.25,{}.5,-{}.75,1e-3]", r % 997, r % 13, r % 7).unwrap();
    }
    text.push_str("]}]}");
    let body = Bytes::from(text);
    let payload = body.len() as u64;
    assert!(payload > 20 << 20, "{payload}");

    // Reset the high-water mark to what is resident now, then decode.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_bytes();
    let request = decode_request("m".parse().unwrap(), None, &body, None).unwrap();
    let grown = peak_rss_bytes().saturating_sub(before);
    eprintln!("a {payload}-byte JSON body grew the peak RSS by {grown} bytes");

    let tensor = &request.inputs[0];
    assert_eq!(tensor.shape(), [rows, 4]);
    assert_eq!(tensor.to_f32().unwrap()[4..8], [1.25, 1.5, -1.75, 1e-3]);
    let tensor_bytes = (rows * 4 * 4) as u64;
    // The tensor itself (16 MB) plus slack; a JSON tree of 4M numbers is hundreds of MB.
    assert!(
        grown < tensor_bytes + payload / 2,
        "decoding a {payload}-byte body grew the peak RSS by {grown} bytes (tensor: {tensor_bytes})"
    );
}
