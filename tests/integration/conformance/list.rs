//! Listing keys.

use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::*;
use crate::support::{code, TestServer};

/// ListKeys pages through every key in name order.
pub async fn list_keys_pages(s: &TestServer) {
    for i in 0..7 {
        create(s, &format!("page-{i}"), Algorithm::HmacSha256).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let r = s
            .admin()
            .list_keys(pb::ListKeysRequest {
                page_size: 3,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.keys.len() <= 3);
        names.extend(r.keys.into_iter().map(|k| k.name));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let expected: Vec<String> = (0..7).map(|i| format!("page-{i}")).collect();
    let got: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with("page-"))
        .collect();
    assert_eq!(got, expected);
    let r = s
        .admin()
        .list_keys(pb::ListKeysRequest {
            page_size: 5000,
            page_token: String::new(),
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    let r = s
        .admin()
        .list_keys(pb::ListKeysRequest {
            page_size: 1,
            page_token: "%%%".into(),
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
}
