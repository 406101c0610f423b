//! Signing deliveries exactly as WorkOS does, so the official SDKs' verifiers accept them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header the signature travels in.
pub const SIGNATURE_HEADER: &str = "WorkOS-Signature";

/// `WorkOS-Signature` for `body` sent at `t_ms`: `t=<ms>, v1=<hex HMAC-SHA256(secret, "t.body")>`
/// (contract §6.2: comma and exactly one space).
pub fn signature_header(secret: &str, t_ms: i64, body: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(t_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("t={t_ms}, v1={}", crate::hex::encode(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_contract_test_vector() {
        let body = r#"{"object":"event","id":"event_01EHZNVPK3SFK441A1RGBFSHRT","event":"pipes.connected_account.connected","data":{"object":"connected_account","id":"data_installation_01EHZNVPK3SFK441A1RGBFSHRT","data_integration_id":"data_integration_01EHZNVPK3SFK441A1RGBFSHRT","provider_slug":"github","user_id":"user_01EHZNVPK3SFK441A1RGBFSHRT","organization_id":null,"scopes":["repo"],"state":"connected","created_at":"2026-01-15T12:00:00.000Z","updated_at":"2026-01-15T12:00:00.000Z"},"created_at":"2026-01-15T12:00:00.000Z"}"#;
        assert_eq!(body.len(), 510);
        assert_eq!(
            signature_header("whsec_0123456789abcdef", 1_768_478_400_000, body),
            "t=1768478400000, v1=ceb133d161ecf03e1ab0da43b0c5598721c1213f70b1884999f3707e7dffde3b"
        );
    }
}
