//! Secrets at rest.
//!
//! - Hottoks are only ever compared, never shown, so only a keyed MAC of each is stored
//!   (plus a 4-character hint) and comparisons are constant-time.
//! - Hotmart client credentials must be read back to call the API, so they are sealed
//!   with ChaCha20-Poly1305 under a key derived from `CRM_SECRET_KEY`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng},
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{DomainError, DomainResult};

const SEALED_PREFIX: &str = "v1:";

/// Keys derived from the installation's `CRM_SECRET_KEY`.
#[derive(Clone)]
pub struct SecretKeys {
    mac_key: [u8; 32],
    seal_key: [u8; 32],
    buyer_key: [u8; 32],
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKeys(..)")
    }
}

fn derive(master: &[u8], purpose: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

impl SecretKeys {
    pub fn new(master: &[u8]) -> Self {
        Self {
            mac_key: derive(master, b"checkout-crm/hottok-mac/v1"),
            seal_key: derive(master, b"checkout-crm/credentials/v1"),
            buyer_key: derive(master, b"checkout-crm/erased-buyer/v1"),
        }
    }

    /// The stored form of a hottok.
    pub fn hottok_mac(&self, hottok: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .expect("HMAC takes any key length");
        mac.update(hottok.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Constant-time check of a presented hottok against a stored MAC.
    pub fn hottok_matches(&self, presented: &str, stored_mac: &str) -> bool {
        let computed = self.hottok_mac(presented);
        computed.as_bytes().ct_eq(stored_mac.as_bytes()).into()
    }

    /// An erased buyer's tombstone hash of a normalised e-mail or phone: keyed, so the
    /// stored value cannot be matched against a list of addresses without the key.
    pub fn buyer_hash(&self, normalised: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.buyer_key)
            .expect("HMAC takes any key length");
        mac.update(normalised.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Encrypts `plaintext` for storage.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let cipher = ChaCha20Poly1305::new((&self.seal_key).into());
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plaintext)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts what [`SecretKeys::seal`] produced; fails when the key changed or the data was altered.
    pub fn open(&self, sealed: &str) -> DomainResult<Vec<u8>> {
        let invalid = || {
            DomainError::Internal(
                "stored credentials cannot be decrypted (was CRM_SECRET_KEY changed?)".into(),
            )
        };
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .ok_or_else(invalid)?;
        if raw.len() < 12 {
            return Err(invalid());
        }
        let (nonce, body) = raw.split_at(12);
        ChaCha20Poly1305::new((&self.seal_key).into())
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| invalid())
    }
}

/// `n` bytes of OS randomness, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256, for fingerprints of stored bodies.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hottok_mac_matches_only_the_same_token_and_key() {
        let keys = SecretKeys::new(b"k1");
        let stored = keys.hottok_mac("secret-hottok");
        assert!(keys.hottok_matches("secret-hottok", &stored));
        assert!(!keys.hottok_matches("secret-hottoK", &stored));
        assert!(!SecretKeys::new(b"k2").hottok_matches("secret-hottok", &stored));
        assert!(!stored.contains("secret"));
    }

    #[test]
    fn sealed_credentials_round_trip_and_detect_tampering() {
        let keys = SecretKeys::new(b"master");
        let sealed = keys.seal(b"client-secret");
        assert!(!sealed.contains("client-secret"));
        assert_eq!(keys.open(&sealed).unwrap(), b"client-secret");
        assert_ne!(sealed, keys.seal(b"client-secret"), "nonces are random");
        assert!(SecretKeys::new(b"other").open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.open(&tampered).is_err());
        assert!(keys.open("garbage").is_err());
    }
}
