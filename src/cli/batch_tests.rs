//! The input format and the splitting into calls.

use super::*;

#[test]
fn lines_take_a_key_a_version_and_one_input() {
    let text = br#"{"key":"a","message":"hello"}

{"message_base64":"AAEC","version":2}
{"digest_hex":"00ff"}
"#;
    let e = parse(text, Some("dflt"), false).unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!((e[0].line, e[0].key.as_str(), e[0].version), (1, "a", 0));
    assert!(matches!(&e[0].input, Input::Message(m) if m == b"hello"));
    // The blank line counts: line numbers point at the input.
    assert_eq!((e[1].line, e[1].key.as_str(), e[1].version), (3, "dflt", 2));
    assert!(matches!(&e[1].input, Input::Message(m) if m == &[0, 1, 2]));
    assert!(matches!(&e[2].input, Input::Digest(d) if d == &[0, 255]));
}

#[test]
fn a_wrong_line_is_named() {
    for (text, verify, want) in [
        (
            &br#"{"message":"x"}"#[..],
            false,
            "line 1: no \"key\", and no --key",
        ),
        (br#"{"key":"k"}"#, false, "line 1: give exactly one of"),
        (
            br#"{"key":"k","message":"x","digest_hex":"00"}"#,
            false,
            "exactly one",
        ),
        (
            b"\n{\"key\":\"k\",\"digest_hex\":\"0g\"}",
            false,
            "line 2: digest_hex is not valid hex",
        ),
        (
            br#"{"key":"k","message":"x","signature":"AA=="}"#,
            false,
            "is for verify-batch",
        ),
        (
            br#"{"key":"k","message":"x"}"#,
            true,
            "line 1: no \"signature\"",
        ),
        (
            br#"{"key":"k","message":"x","version":0}"#,
            false,
            "must be 1 or more",
        ),
        (
            br#"{"key":"k","mesage":"x"}"#,
            false,
            "unknown field `mesage`",
        ),
        (b"not json", false, "line 1: "),
    ] {
        let e = match parse(text, None, verify) {
            Err(e) => e,
            Ok(_) => panic!("{:?} parsed", String::from_utf8_lossy(text)),
        };
        assert!(e.message.contains(want), "{} / {want}", e.message);
        assert_eq!(e.code, super::super::client::EXIT_USAGE);
    }
}

#[test]
fn calls_stay_within_both_bounds() {
    let entry = |n: usize, size: usize| Entry {
        line: n,
        key: "k".into(),
        version: 0,
        input: Input::Message(vec![0; size]),
        signature: None,
    };
    let sizes = |c: &[Vec<Entry>]| -> Vec<Vec<usize>> {
        c.iter()
            .map(|c| c.iter().map(|e| e.line).collect())
            .collect()
    };
    // At most 2 items per call.
    let c = chunks((1..=5).map(|n| entry(n, 1)).collect(), 2, 1000);
    assert_eq!(sizes(&c), [vec![1, 2], vec![3, 4], vec![5]]);
    // At most 10 bytes per call: each entry is 1 + 4 bytes.
    let c = chunks((1..=5).map(|n| entry(n, 4)).collect(), 100, 10);
    assert_eq!(sizes(&c), [vec![1, 2], vec![3, 4], vec![5]]);
    // An entry larger than the bound goes alone.
    let c = chunks(vec![entry(1, 1), entry(2, 50), entry(3, 1)], 100, 10);
    assert_eq!(sizes(&c), [vec![1], vec![2], vec![3]]);
}
