//! The two pieces of cryptography Web Push needs, built from RustCrypto crates (no
//! hand-written primitives): the payload encryption of RFC 8291 (`aes128gcm`, RFC 8188) and
//! the VAPID JWT of RFC 8292 (ES256). Pure functions: the caller hands in the randomness, so
//! the tests can pin the RFC's own example.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// RFC 8188 record size we announce. One record holds the whole payload: push services
/// accept at most 4096 bytes of body (RFC 8030 §7.2), and our payloads stay far below.
const RECORD_SIZE: u32 = 4096;
/// A payload is cut to fit one record with room for the header (86 bytes), the padding
/// delimiter and the 16-byte tag.
pub const MAX_PLAINTEXT: usize = 3000;

/// Why a subscription's keys cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct BadKey;

/// A P-256 private key from 32 bytes, or `None` for the rare value that is not a valid
/// scalar (the caller draws again).
pub fn secret_key(bytes: &[u8]) -> Option<SecretKey> {
    SecretKey::from_slice(bytes).ok()
}

/// The uncompressed public point (65 bytes) of `key`: what `applicationServerKey` and the
/// `k=` of the VAPID header carry.
pub fn public_bytes(key: &SecretKey) -> Vec<u8> {
    key.public_key().to_encoded_point(false).as_bytes().to_vec()
}

/// Checks a browser's `p256dh` (an uncompressed point on P-256) and `auth` (16 bytes).
pub fn check_subscription_keys(p256dh: &[u8], auth: &[u8]) -> Result<(), BadKey> {
    if p256dh.len() != 65 || auth.len() != 16 {
        return Err(BadKey);
    }
    PublicKey::from_sec1_bytes(p256dh)
        .map(drop)
        .map_err(|_| BadKey)
}

/// Encrypts `plaintext` for one subscription (RFC 8291 §3.4, one RFC 8188 record).
/// `ephemeral` is a fresh key of this message and `salt` 16 fresh random bytes.
pub fn encrypt(
    ua_public: &[u8],
    auth_secret: &[u8],
    plaintext: &[u8],
    ephemeral: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, BadKey> {
    let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|_| BadKey)?;
    let as_public = public_bytes(ephemeral);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), ua.as_affine());
    // RFC 8291 §3.3: IKM from the ECDH secret, keyed by the auth secret, bound to both keys.
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(&as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| BadKey)?;
    // RFC 8188 §2.2 and §2.3: the content key and nonce from the salt.
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| BadKey)?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| BadKey)?;
    // One record, so it is the last: the padding delimiter is 0x02 (RFC 8188 §2).
    let mut padded = plaintext.to_vec();
    padded.push(2);
    let sealed = Aes128Gcm::new_from_slice(&cek)
        .map_err(|_| BadKey)?
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| BadKey)?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The `Authorization` header value of RFC 8292 §3: `vapid t=<JWT>, k=<public key>`. The
/// JWT is ES256 over `{"aud":<origin of the endpoint>,"exp":…,"sub":<contact>}`.
pub fn vapid_authorization(
    key: &SecretKey,
    audience: &str,
    exp_unix_s: u64,
    subject: &str,
) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims = serde_json::json!({ "aud": audience, "exp": exp_unix_s, "sub": subject });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature: Signature = SigningKey::from(key).sign(signing_input.as_bytes());
    // JWS ES256 is the raw r || s (RFC 7518 §3.4), which is what `to_bytes` gives.
    let jwt = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    format!(
        "vapid t={jwt}, k={}",
        URL_SAFE_NO_PAD.encode(public_bytes(key))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8291 §5's example: the same keys, salt and text give the same bytes.
    #[test]
    fn encrypts_the_rfc_8291_example_exactly() {
        let ua_public = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let as_private = b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt(
            &ua_public,
            &auth,
            b"When I grow up, I want to be a watermelon",
            &secret_key(&as_private).unwrap(),
            &salt,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn vapid_jwt_verifies_against_the_public_key() {
        use p256::ecdsa::signature::Verifier;
        use p256::ecdsa::VerifyingKey;
        let key = secret_key(&[7u8; 32]).unwrap();
        let h = vapid_authorization(
            &key,
            "https://push.example.net",
            1_700_000_000,
            "mailto:a@b",
        );
        let rest = h.strip_prefix("vapid t=").unwrap();
        let (jwt, k) = rest.split_once(", k=").unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let vk = VerifyingKey::from_sec1_bytes(&b64(k)).unwrap();
        let sig = Signature::from_slice(&b64(sig)).unwrap();
        vk.verify(input.as_bytes(), &sig).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&b64(input.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert!(check_subscription_keys(&b64(k), &[0; 16]).is_ok());
        assert!(check_subscription_keys(&[4; 65], &[0; 16]).is_err());
    }
}
