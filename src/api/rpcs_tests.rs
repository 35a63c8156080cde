//! The RPC table ([`crate::rpcs`]) and the generated gRPC services agree.

use std::collections::BTreeSet;

use prost::Message;

use super::pb;
use crate::rpcs;

/// `service/method` for every method of every service in the protos.
fn served() -> BTreeSet<String> {
    let fds = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)
        .expect("the build's descriptor set decodes");
    let mut out = BTreeSet::new();
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                out.insert(format!("{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    out
}

#[test]
fn the_table_lists_exactly_the_methods_the_protos_define() {
    let table: BTreeSet<String> = rpcs::ALL.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(table.len(), rpcs::ALL.len(), "a path is listed twice");
    assert_eq!(table, served());
}

#[test]
fn the_table_names_the_generated_services() {
    assert_eq!(pb::signer_server::SERVICE_NAME, rpcs::SIGNER);
    assert_eq!(pb::key_admin_server::SERVICE_NAME, rpcs::KEY_ADMIN);
    assert_eq!(pb::cipher_service_server::SERVICE_NAME, rpcs::CIPHER);
}

#[test]
fn refusals_are_audited_under_the_table_operation() {
    for r in rpcs::ALL {
        assert_eq!(crate::auth::op_of(r.path), Some(r.op), "{}", r.path);
    }
    assert_eq!(crate::auth::op_of("signet.v1.Signer/Nope"), None);
}
