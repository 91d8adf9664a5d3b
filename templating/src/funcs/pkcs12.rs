//! ESO's PKCS#12 template functions (runtime/template/v2/pkcs12.go, on go-pkcs12): reading a
//! key or certificate chain out of a PFX (`pkcs12key`, `pkcs12cert` and their `Pass` forms)
//! and writing PEM material as a base64 PFX the way go-pkcs12's `Modern` encoder does
//! (`pemToPkcs12`, `fullPemToPkcs12`, `pemTruststoreToPKCS12` and their `Pass` forms).
//!
//! A PFX comes from tenants and every password-based key derivation in it runs as many
//! hash iterations as the file says, possibly nested inside encrypted contents. The reader
//! below walks the structure itself and charges each derivation's iterations to the template
//! budget before running it, so a hostile file fails with a budget error instead of
//! occupying the controller.

use base64::Engine as _;
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use der8::asn1::{ObjectIdentifier, OctetString};
use der8::{Decode, Encode};
use hmac_013::{KeyInit, Mac};
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::{AuthenticatedSafe, CertBag, MacData, Pfx, SafeBag};
use sha1_011::Sha1;
use zeroize::Zeroizing;

use super::{R, arity, string, text};
use crate::budget::Budget;
use crate::value::Value;

pub(super) const NAMES: &[&str] = &[
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "pemTruststoreToPKCS12",
    "pemTruststoreToPKCS12Pass",
];

/// go-pkcs12's `Modern` encoder: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and an HMAC-SHA256
/// MAC, 2048 iterations each.
const WRITE_ITERATIONS: u32 = 2048;

const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const OID_PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

pub(super) fn call(name: &str, args: Vec<Value>, budget: &mut Budget) -> R<Value> {
    let a = &args;
    match name {
        "pkcs12key" | "pkcs12keyPass" | "pkcs12cert" | "pkcs12certPass" => {
            let (password, input) = if name.ends_with("Pass") {
                arity(name, a, 2)?;
                (text(&a[0])?, string(&a[1])?)
            } else {
                arity(name, a, 1)?;
                (String::new(), string(&a[0])?)
            };
            let password = Zeroizing::new(password);
            if name.starts_with("pkcs12key") {
                let decoded = decode(input, &password, budget)
                    .map_err(|e| format!("unable to decode pkcs12 with password: {e}"))?;
                Ok(Value::str(pem_block("PRIVATE KEY", &decoded.key)))
            } else {
                let decoded = decode(input, &password, budget).map_err(|e| {
                    format!("unable to decode pkcs12 certificate with password: {e}")
                })?;
                let mut pem = Vec::new();
                for der in std::iter::once(&decoded.leaf).chain(&decoded.ca) {
                    pem.extend_from_slice(&pem_block("CERTIFICATE", der));
                }
                // As ESO: ordered leaf to root when the chain links up, else as stored.
                Ok(Value::str(
                    super::pki::ordered_pem(&pem, budget).unwrap_or(pem),
                ))
            }
        }
        "pemToPkcs12" | "pemToPkcs12Pass" | "fullPemToPkcs12" | "fullPemToPkcs12Pass" => {
            let password = if name.ends_with("Pass") {
                arity(name, a, 3)?;
                text(&a[2])?
            } else {
                arity(name, a, 2)?;
                String::new()
            };
            let password = Zeroizing::new(password);
            let certs = pem_certificates(string(&a[0])?)?;
            let Some((leaf, rest)) = certs.split_first() else {
                return Err("no certificate found".into());
            };
            let ca = if name.starts_with("full") { rest } else { &[] };
            let key = private_key_pkcs8(string(&a[1])?)?;
            budget.step(3 * u64::from(WRITE_ITERATIONS))?;
            let pfx = encode_key_and_chain(leaf, ca, &key, &password)?;
            Ok(Value::str(
                base64::engine::general_purpose::STANDARD.encode(pfx),
            ))
        }
        "pemTruststoreToPKCS12" | "pemTruststoreToPKCS12Pass" => {
            let password = if name.ends_with("Pass") {
                arity(name, a, 2)?;
                text(&a[1])?
            } else {
                arity(name, a, 1)?;
                String::new()
            };
            let password = Zeroizing::new(password);
            let certs = pem_certificates(string(&a[0])?)?;
            budget.step(2 * u64::from(WRITE_ITERATIONS))?;
            let pfx = encode_trust_store(&certs, &password)?;
            Ok(Value::str(
                base64::engine::general_purpose::STANDARD.encode(pfx),
            ))
        }
        other => Err(format!("{other}: not a PKCS#12 function")),
    }
}

fn pem_block(tag: &str, der: &[u8]) -> Vec<u8> {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
    .into_bytes()
}

/// Go's `pem.Decode` loop over certificates as ESO runs it: every block must be one.
fn pem_certificates(input: &[u8]) -> R<Vec<Vec<u8>>> {
    let blocks = pem::parse_many(input).map_err(|_| "failed to decode PEM block".to_string())?;
    if blocks.is_empty() {
        return Err("failed to decode PEM block".into());
    }
    blocks
        .into_iter()
        .map(|b| {
            x509_parser::parse_x509_certificate(b.contents())
                .map_err(|_| "x509: malformed certificate".to_string())?;
            Ok(b.into_contents())
        })
        .collect()
}

/// ESO's `parsePrivateKey`: PKCS#1, PKCS#8 or SEC1 EC, as PKCS#8 DER.
fn private_key_pkcs8(input: &[u8]) -> R<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::encoding::AsDer;
    let block = pem::parse_many(input)
        .ok()
        .and_then(|b| b.into_iter().next())
        .ok_or_else(|| "failed to decode PEM block".to_string())?;
    let der = Zeroizing::new(block.into_contents());
    if aws_lc_rs::rsa::KeyPair::from_der(&der).is_ok() {
        return Ok(Zeroizing::new(super::pki::pkcs1_to_pkcs8(&der)));
    }
    if p12_keystore::PrivateKey::from_der(&der).is_ok() {
        return Ok(der);
    }
    for alg in [
        &aws_lc_rs::agreement::ECDH_P256,
        &aws_lc_rs::agreement::ECDH_P384,
        &aws_lc_rs::agreement::ECDH_P521,
    ] {
        if let Ok(key) = aws_lc_rs::agreement::PrivateKey::from_private_key_der(alg, &der) {
            let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der<'_> = key
                .as_der()
                .map_err(|_| "unable to parse private key type".to_string())?;
            return Ok(Zeroizing::new(pkcs8.as_ref().to_vec()));
        }
    }
    Err("unable to parse private key type".into())
}

fn keystore_error(e: p12_keystore::error::Error) -> String {
    format!("pkcs12: {e}")
}

fn certificate(der: &[u8]) -> R<p12_keystore::Certificate> {
    p12_keystore::Certificate::from_der(der).map_err(keystore_error)
}

fn write(store: &p12_keystore::KeyStore, password: &str) -> R<Vec<u8>> {
    store
        .writer(password)
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(WRITE_ITERATIONS)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .mac_iterations(WRITE_ITERATIONS)
        .write()
        .map_err(keystore_error)
}

fn encode_key_and_chain(leaf: &[u8], ca: &[Vec<u8>], key: &[u8], password: &str) -> R<Vec<u8>> {
    use sha1_011::Digest as _;
    let key = p12_keystore::PrivateKey::from_der(key).map_err(keystore_error)?;
    let mut chain = vec![certificate(leaf)?];
    for der in ca {
        chain.push(certificate(der)?);
    }
    // go-pkcs12 names the key by the SHA-1 of the leaf certificate.
    let local_key_id = Sha1::digest(leaf).to_vec();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "1",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            local_key_id,
            key,
            chain,
        )),
    );
    write(&store, password)
}

fn encode_trust_store(certs: &[Vec<u8>], password: &str) -> R<Vec<u8>> {
    let mut store = p12_keystore::KeyStore::new();
    for (i, der) in certs.iter().enumerate() {
        let cert = certificate(der)?;
        let alias = format!("{} ({i})", cert.subject());
        store.add_entry(&alias, p12_keystore::KeyStoreEntry::Certificate(cert));
    }
    write(&store, password)
}

/// What go-pkcs12's `DecodeChain` returns.
struct Decoded {
    key: Zeroizing<Vec<u8>>,
    leaf: Vec<u8>,
    ca: Vec<Vec<u8>>,
}

/// A bag's content and its `localKeyId` attribute (which pairs a key with its certificate).
type Keyed<T> = (T, Option<Vec<u8>>);

/// Why a PFX could not be read: text only, never key material.
type D<T> = Result<T, String>;

fn der_error(_: der8::Error) -> String {
    "pkcs12: malformed data".into()
}

/// Charges one password-based derivation of `iterations` rounds over `blocks` hash outputs.
fn charge(budget: &mut Budget, iterations: i64, blocks: u64) -> D<()> {
    if iterations < 1 {
        return Err("pkcs12: invalid iteration count".into());
    }
    budget.step(
        u64::try_from(iterations)
            .unwrap_or(u64::MAX)
            .saturating_mul(blocks),
    )
}

fn decode(input: &[u8], password: &str, budget: &mut Budget) -> D<Decoded> {
    let pfx = Pfx::from_der(input).map_err(der_error)?;
    if pfx.version != pkcs12::pfx::Version::V3 {
        return Err("pkcs12: unsupported version".into());
    }
    if pfx.auth_safe.content_type != OID_DATA {
        return Err("pkcs12: only password-protected PFX is supported".into());
    }
    let auth_safe = OctetString::from_der(&pfx.auth_safe.content.to_der().map_err(der_error)?)
        .map_err(der_error)?;
    match &pfx.mac_data {
        Some(mac) => verify_mac(mac, password, auth_safe.as_bytes(), budget)?,
        None if password.is_empty() => {}
        None => return Err("pkcs12: no MAC in data".into()),
    }
    let safes = AuthenticatedSafe::from_der(auth_safe.as_bytes()).map_err(der_error)?;
    let mut keys: Vec<Keyed<Zeroizing<Vec<u8>>>> = Vec::new();
    let mut certs: Vec<Keyed<Vec<u8>>> = Vec::new();
    for safe in &safes {
        let contents = safe_contents(safe, password, budget)?;
        let bags = pkcs12::safe_bag::SafeContents::from_der(&contents).map_err(der_error)?;
        for bag in &bags {
            read_bag(bag, password, budget, &mut keys, &mut certs)?;
        }
    }
    let (key, key_id) = match keys.len() {
        0 => return Err("pkcs12: private key missing".into()),
        1 => keys.remove(0),
        _ => return Err("pkcs12: expected exactly one key bag".into()),
    };
    if certs.is_empty() {
        return Err("pkcs12: certificate missing".into());
    }
    // The certificate of the key (same localKeyId) is the leaf; else the first one.
    let leaf_at = certs
        .iter()
        .position(|(_, id)| id.is_some() && *id == key_id)
        .unwrap_or(0);
    let (leaf, _) = certs.remove(leaf_at);
    Ok(Decoded {
        key,
        leaf,
        ca: certs.into_iter().map(|(der, _)| der).collect(),
    })
}

fn verify_mac(mac: &MacData, password: &str, data: &[u8], budget: &mut Budget) -> D<()> {
    charge(budget, i64::from(mac.iterations), 2)?;
    let salt = mac.mac_salt.as_bytes();
    let expected = mac.mac.digest.as_bytes();
    let ok = match mac.mac.algorithm.oid {
        OID_SHA1 => {
            let key =
                derive_key_utf8::<Sha1>(password, salt, Pkcs12KeyType::Mac, mac.iterations, 20)
                    .map_err(der_error)?;
            let mut m =
                hmac_013::Hmac::<Sha1>::new_from_slice(&key).map_err(|_| "pkcs12: bad MAC key")?;
            m.update(data);
            m.verify_slice(expected).is_ok()
        }
        OID_SHA256 => {
            let key = derive_key_utf8::<sha2_011::Sha256>(
                password,
                salt,
                Pkcs12KeyType::Mac,
                mac.iterations,
                32,
            )
            .map_err(der_error)?;
            let mut m = hmac_013::Hmac::<sha2_011::Sha256>::new_from_slice(&key)
                .map_err(|_| "pkcs12: bad MAC key")?;
            m.update(data);
            m.verify_slice(expected).is_ok()
        }
        _ => return Err("pkcs12: unsupported MAC algorithm (SHA-1 or SHA-256)".into()),
    };
    if !ok {
        return Err("pkcs12: decryption password incorrect".into());
    }
    Ok(())
}

/// The SafeContents bytes of one ContentInfo of the AuthenticatedSafe.
fn safe_contents(safe: &ContentInfo, password: &str, budget: &mut Budget) -> D<Zeroizing<Vec<u8>>> {
    let content = safe.content.to_der().map_err(der_error)?;
    match safe.content_type {
        OID_DATA => Ok(Zeroizing::new(
            OctetString::from_der(&content)
                .map_err(der_error)?
                .into_bytes()
                .into_vec(),
        )),
        OID_ENCRYPTED_DATA => {
            let enc = EncryptedData::from_der(&content).map_err(der_error)?;
            let Some(ciphertext) = enc.enc_content_info.encrypted_content.as_ref() else {
                return Ok(Zeroizing::new(Vec::new()));
            };
            decrypt(
                &enc.enc_content_info.content_enc_alg,
                ciphertext.as_bytes(),
                password,
                budget,
            )
        }
        _ => Err("pkcs12: unsupported content type".into()),
    }
}

fn read_bag(
    bag: &SafeBag,
    password: &str,
    budget: &mut Budget,
    keys: &mut Vec<Keyed<Zeroizing<Vec<u8>>>>,
    certs: &mut Vec<Keyed<Vec<u8>>>,
) -> D<()> {
    let local_key_id = bag.bag_attributes.as_ref().and_then(|attrs| {
        attrs
            .iter()
            .find(|a| a.oid == OID_LOCAL_KEY_ID)
            .and_then(|a| a.values.iter().next())
            .and_then(|v| v.to_der().ok())
            .and_then(|der| OctetString::from_der(&der).ok())
            .map(|o| o.into_bytes().into_vec())
    });
    // The bag value is `[0] EXPLICIT`: its content is the inner value's DER.
    let inner = || -> D<&[u8]> {
        let header_len = explicit_header_len(&bag.bag_value)?;
        bag.bag_value
            .get(header_len..)
            .ok_or_else(|| "pkcs12: malformed data".to_string())
    };
    match bag.bag_id {
        pkcs12::PKCS_12_CERT_BAG_OID => {
            let cert_bag = CertBag::from_der(inner()?).map_err(der_error)?;
            if cert_bag.cert_id != pkcs12::PKCS_12_X509_CERT_OID {
                return Err("pkcs12: unsupported certificate type".into());
            }
            let der = cert_bag.cert_value.into_bytes().into_vec();
            x509_parser::parse_x509_certificate(&der)
                .map_err(|_| "x509: malformed certificate".to_string())?;
            certs.push((der, local_key_id));
        }
        pkcs12::PKCS_12_PKCS8_KEY_BAG_OID => {
            let info = EncryptedPrivateKeyInfo::from_der(inner()?).map_err(der_error)?;
            let key = decrypt(
                &info.encryption_algorithm,
                info.encrypted_data.as_bytes(),
                password,
                budget,
            )?;
            p12_keystore::PrivateKey::from_der(&key)
                .map_err(|_| "pkcs12: malformed private key")?;
            keys.push((key, local_key_id));
        }
        pkcs12::PKCS_12_KEY_BAG_OID => {
            let key = Zeroizing::new(inner()?.to_vec());
            p12_keystore::PrivateKey::from_der(&key)
                .map_err(|_| "pkcs12: malformed private key")?;
            keys.push((key, local_key_id));
        }
        // CRLs, secrets and nested safe contents carry nothing ESO's functions return.
        _ => {}
    }
    Ok(())
}

/// Length of the header of a context-specific constructed `[0]` element.
fn explicit_header_len(der: &[u8]) -> D<usize> {
    let malformed = || "pkcs12: malformed data".to_string();
    if der.first() != Some(&0xA0) {
        return Err(malformed());
    }
    let first = *der.get(1).ok_or_else(malformed)?;
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7F)
    };
    if der.len() < header {
        return Err(malformed());
    }
    Ok(header)
}

/// Decrypts with a PBES2 (PBKDF2) scheme or a PKCS#12 PBE scheme (SHA-1 with 3DES or RC2),
/// after charging its iterations.
fn decrypt(
    alg: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    password: &str,
    budget: &mut Budget,
) -> D<Zeroizing<Vec<u8>>> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| "pkcs12: missing encryption parameters".to_string())?
        .to_der()
        .map_err(der_error)?;
    let unsupported = || "pkcs12: unsupported encryption algorithm".to_string();
    let wrong = || "pkcs12: decryption error, incorrect padding (wrong password?)".to_string();
    if alg.oid == OID_PBES2 {
        let params = pkcs5::pbes2::Parameters::from_der(&params).map_err(der_error)?;
        match &params.kdf {
            // Up to 32 bytes of key from a SHA-1 or SHA-256 HMAC: two blocks, two hashes each.
            pkcs5::pbes2::Kdf::Pbkdf2(p) => charge(budget, i64::from(p.iteration_count), 4)?,
            _ => return Err(unsupported()),
        }
        return params
            .decrypt(password.as_bytes(), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| wrong());
    }
    let key_len = match alg.oid {
        pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => 24,
        pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => 16,
        pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => 5,
        _ => return Err(unsupported()),
    };
    let pbe = Pkcs12PbeParams::from_der(&params).map_err(der_error)?;
    // Key (up to two SHA-1 blocks) and IV (one).
    charge(budget, i64::from(pbe.iterations), 3)?;
    let salt = pbe.salt.as_bytes();
    let derive = |kind, len| {
        derive_key_utf8::<Sha1>(password, salt, kind, pbe.iterations, len)
            .map(Zeroizing::new)
            .map_err(der_error)
    };
    let key = derive(Pkcs12KeyType::EncryptionKey, key_len)?;
    let iv = derive(Pkcs12KeyType::Iv, 8)?;
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
    let plain = if key_len == 24 {
        cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(|_| unsupported())?
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
    } else {
        cbc::Decryptor::<rc2::Rc2>::new_from_slices(&key, &iv)
            .map_err(|_| unsupported())?
            .decrypt_padded_vec::<Pkcs7>(ciphertext)
    };
    plain.map(Zeroizing::new).map_err(|_| wrong())
}
