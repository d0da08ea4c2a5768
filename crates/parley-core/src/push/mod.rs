//! Push notifications: what a device subscribes with, checked before it is stored
//! (`endpoint`: where the server will send requests, so an SSRF guard; `keys`), and the
//! server's VAPID key pair (RFC 8292) that Web Push services know it by.

pub mod endpoint;
pub mod vapid;

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// base64url with its padding or without (browsers differ), but nothing else.
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A subscription's keys as RFC 8291 needs them: `p256dh` an uncompressed P-256 point
/// (65 bytes, first `0x04`), `auth` 16 bytes, both base64url (padding tolerated, as some
/// browsers add it). The error says which is wrong.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), String> {
    let decode = |text: &str| URL_SAFE_ANY_PAD.decode(text);
    match decode(p256dh) {
        Ok(point) if point.len() == 65 && point[0] == 0x04 => {}
        _ => {
            return Err(
                "keys.p256dh must be an uncompressed P-256 public key (65 bytes, base64url)".into(),
            )
        }
    }
    match decode(auth) {
        Ok(secret) if secret.len() == 16 => Ok(()),
        _ => Err("keys.auth must be a 16-byte secret, base64url".into()),
    }
}

/// An APNs or FCM token: 1-4096 characters of letters, digits and `:_-.`.
pub fn check_token(token: &str) -> Result<(), String> {
    let fine = !token.is_empty()
        && token.len() <= 4096
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-.".contains(&b));
    match fine {
        true => Ok(()),
        false => Err("token must be 1-4096 characters of letters, digits and :_-.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn keys_and_tokens_have_their_shapes() {
        let point = URL_SAFE_NO_PAD.encode([[4u8].as_slice(), &[7u8; 64]].concat());
        let auth = URL_SAFE_NO_PAD.encode([9u8; 16]);
        assert!(check_keys(&point, &auth).is_ok());
        assert!(check_keys(&format!("{point}="), &format!("{auth}==")).is_ok());
        assert!(check_keys(&format!("{point}=="), &auth).is_err());
        let compressed = URL_SAFE_NO_PAD.encode([[2u8].as_slice(), &[7u8; 32]].concat());
        assert!(check_keys(&compressed, &auth).is_err());
        assert!(check_keys(&point, &URL_SAFE_NO_PAD.encode([9u8; 15])).is_err());
        assert!(check_keys("not base64!", &auth).is_err());
        assert!(check_token("d7f9:APA91b-x_y.z").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(4097)] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
    }
}
