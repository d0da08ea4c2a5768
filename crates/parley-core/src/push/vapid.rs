//! The server's VAPID key pair (RFC 8292): a P-256 key that signs the JWT each Web Push
//! request carries; push services tie a subscription to its public key, so it must stay
//! the same across restarts and on every node (see `Store::server_secret`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::SecretKey;

/// Where the private key is kept among the server's secrets.
pub const SECRET_NAME: &str = "vapid_private_key";

/// The key pair, from its private scalar.
#[derive(Clone)]
pub struct VapidKey {
    secret: SecretKey,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A new random key pair.
    pub fn generate() -> Self {
        loop {
            let bytes: [u8; 32] = rand::random();
            // Almost every 32 bytes are a valid scalar; the rest (0, ≥ n) are drawn again.
            if let Ok(secret) = SecretKey::from_slice(&bytes) {
                return Self { secret };
            }
        }
    }

    /// The key whose private scalar is `text` (32 bytes, base64url), as stored or
    /// configured.
    pub fn from_private(text: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| "the VAPID private key must be base64url".to_owned())?;
        if bytes.len() != 32 {
            return Err("the VAPID private key must be a 32-byte P-256 scalar".into());
        }
        SecretKey::from_slice(&bytes)
            .map(|secret| Self { secret })
            .map_err(|_| "the VAPID private key must be a 32-byte P-256 scalar".to_owned())
    }

    /// The private scalar, base64url: what is stored.
    pub fn private_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.to_bytes())
    }

    /// The public key as browsers take it (`applicationServerKey`): the uncompressed
    /// point, base64url without padding.
    pub fn public_key(&self) -> String {
        let point = self.secret.public_key().to_encoded_point(false);
        URL_SAFE_NO_PAD.encode(point.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_from_its_private_text() {
        let key = VapidKey::generate();
        let again = VapidKey::from_private(&key.private_text()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = URL_SAFE_NO_PAD.decode(key.public_key()).unwrap();
        assert_eq!((public.len(), public[0]), (65, 4));
        assert_ne!(VapidKey::generate().public_key(), key.public_key());
        assert!(VapidKey::from_private("short").is_err());
        let truncated =
            URL_SAFE_NO_PAD.encode(&URL_SAFE_NO_PAD.decode(key.private_text()).unwrap()[1..]);
        assert!(VapidKey::from_private(&truncated).is_err());
        assert!(VapidKey::from_private(&URL_SAFE_NO_PAD.encode([0u8; 32])).is_err());
    }
}
