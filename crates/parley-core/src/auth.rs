//! Credentials: Argon2id password hashes, opaque bearer tokens and input rules for them.
//!
//! Tokens are 256 random bits; only their SHA-256 is stored, so a database leak yields no
//! usable token, and revoking is deleting a row (no signature to outlive a logout).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password with Argon2id (memory-hard). CPU-heavy: call off the async threads.
pub fn hash_password(password: &str, memory_kib: u32, iterations: u32) -> Result<String, String> {
    let params = Params::new(memory_kib, iterations, 1, None).map_err(|error| error.to_string())?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::generate(&mut OsRng);
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// Checks a password against a stored PHC hash string (its own parameters apply).
pub fn verify_password(stored_hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A new bearer token: `pt_` and 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut token = String::with_capacity(67);
    token.push_str("pt_");
    for byte in bytes {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

/// What is stored for a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// 3-32 characters of `[a-z0-9_.]`.
pub fn validate_username(username: &str) -> Result<(), String> {
    let length_ok = (3..=32).contains(&username.len());
    let chars_ok = username.bytes().all(|byte| {
        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'.'
    });
    if length_ok && chars_ok {
        Ok(())
    } else {
        Err("username must be 3-32 characters of a-z, 0-9, '_' and '.'".to_owned())
    }
}

/// 8-256 characters.
pub fn validate_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if (8..=256).contains(&length) {
        Ok(())
    } else {
        Err("password must be 8-256 characters".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let first = hash_password("correct horse", 1024, 1).unwrap();
        let second = hash_password("correct horse", 1024, 1).unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with("$argon2id$"));
        assert!(verify_password(&first, "correct horse"));
        assert!(!verify_password(&first, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let token = new_token();
        assert_eq!(token.len(), 67);
        assert_ne!(token, new_token());
        assert_eq!(token_hash(&token), token_hash(&token));
        assert_eq!(token_hash(&token).len(), 32);
    }

    #[test]
    fn username_rules() {
        assert!(validate_username("alice_01.x").is_ok());
        for bad in ["al", "Alice", "al ice", "a".repeat(33).as_str(), "émile"] {
            assert!(validate_username(bad).is_err(), "{bad} accepted");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
