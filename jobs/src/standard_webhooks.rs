//! Standard Webhooks v1 signatures, the scheme receivers already verify:
//! `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` under a secret
//! written `whsec_` + base64 of its bytes. During a rotation's grace both the new and the
//! old secret sign, space-separated.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret.
fn key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .map_err(|_| "a webhook secret is whsec_ followed by base64".to_owned())
}

/// One `v1,<signature>` of the exact bytes sent.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key(secret)?).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The header value for every secret that signs (the current one, then the old one).
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let parts: Result<Vec<String>, String> = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect();
    Ok(parts?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks libraries.
    #[test]
    fn the_specification_s_vector_signs_the_same() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (new, old) = (new_secret(), new_secret());
        assert!(new.starts_with("whsec_") && key(&new).unwrap().len() == 32);
        let both = header(&[&new, &old], "msg_1", 1, b"{}").unwrap();
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            [
                sign(&new, "msg_1", 1, b"{}").unwrap(),
                sign(&old, "msg_1", 1, b"{}").unwrap()
            ]
        );
        assert_ne!(parts[0], parts[1]);
        assert!(sign("whsec_not base64!", "m", 1, b"").is_err());
    }
}
