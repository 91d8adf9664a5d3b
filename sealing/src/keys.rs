//! RSA key pairs and certificates: generate, read and write PEM. Key Secrets and backups are
//! `key_secret.rs`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use pkcs8::der::Encode as _;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::KeyError;

pub(crate) const PEM_CERTIFICATE: &str = "CERTIFICATE";
const PEM_PKCS1_PRIVATE: &str = "RSA PRIVATE KEY";
const PEM_PKCS8_PRIVATE: &str = "PRIVATE KEY";
const PEM_SPKI_PUBLIC: &str = "PUBLIC KEY";
const PEM_PKCS1_PUBLIC: &str = "RSA PUBLIC KEY";

fn invalid(what: &'static str, detail: impl ToString) -> KeyError {
    KeyError::Invalid {
        what,
        detail: detail.to_string(),
    }
}

/// PEM with `\n` line ends, as Go and OpenSSL write it (the `pem` crate defaults to `\r\n`).
fn encode_pem(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// An RSA public key that seals values (RSA-OAEP with SHA-256).
#[derive(Clone)]
pub struct PublicKey {
    oaep: std::sync::Arc<OaepPublicEncryptingKey>,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(rsa-{}, {})", self.bits(), self.fingerprint())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl PublicKey {
    /// From a DER `SubjectPublicKeyInfo` (what `-----BEGIN PUBLIC KEY-----` holds).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = PublicEncryptingKey::from_der(der).map_err(|e| invalid("RSA public key", e))?;
        let oaep = OaepPublicEncryptingKey::new(key).map_err(|e| invalid("RSA public key", e))?;
        Ok(Self {
            oaep: std::sync::Arc::new(oaep),
            spki_der: der.to_vec(),
        })
    }

    /// From a DER PKCS#1 `RSAPublicKey` (what `-----BEGIN RSA PUBLIC KEY-----` holds).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let bits = pkcs8::der::asn1::BitStringRef::from_bytes(der)
            .map_err(|e| invalid("RSA public key", e))?;
        let spki = pkcs8::spki::SubjectPublicKeyInfoRef {
            algorithm: pkcs1::ALGORITHM_ID,
            subject_public_key: bits,
        };
        let der = spki.to_der().map_err(|e| invalid("RSA public key", e))?;
        Self::from_spki_der(&der)
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn to_pem(&self) -> String {
        encode_pem(&pem::Pem::new(PEM_SPKI_PUBLIC, self.spki_der.clone()))
    }

    pub fn bits(&self) -> usize {
        self.oaep.key_size_bits()
    }

    /// Size of the RSA part of a sealed value.
    pub fn ciphertext_size(&self) -> usize {
        self.oaep.ciphertext_size()
    }

    /// SHA-256 of the DER public key, hex: identifies the key whatever certificate carries it.
    pub fn fingerprint(&self) -> String {
        sha256_hex(&self.spki_der)
    }

    pub(crate) fn oaep(&self) -> &OaepPublicEncryptingKey {
        &self.oaep
    }
}

/// An RSA private key that opens sealed values.
pub struct PrivateKey {
    oaep: OaepPrivateDecryptingKey,
    public: PublicKey,
    pkcs8_der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey(for {:?})", self.public)
    }
}

impl PrivateKey {
    /// Generates a new key. `bits` is 2048, 3072, 4096 (the controller's default) or 8192.
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            other => return Err(KeyError::UnsupportedSize(other)),
        };
        let key = PrivateDecryptingKey::generate(size).map_err(|_| KeyError::Generate)?;
        let der = key.as_der().map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8_der(der.as_ref())
    }

    /// From a DER PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let key =
            PrivateDecryptingKey::from_pkcs8(der).map_err(|e| invalid("RSA private key", e))?;
        let public_der = key
            .public_key()
            .as_der()
            .map_err(|e| invalid("RSA private key", e))?;
        let public = PublicKey::from_spki_der(public_der.as_ref())?;
        let oaep = OaepPrivateDecryptingKey::new(key).map_err(|e| invalid("RSA private key", e))?;
        Ok(Self {
            oaep,
            public,
            pkcs8_der: Zeroizing::new(der.to_vec()),
        })
    }

    /// From a DER PKCS#1 `RSAPrivateKey` (the controller's `tls.key` format).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::new(pkcs1::ALGORITHM_ID, der);
        let pkcs8 = Zeroizing::new(info.to_der().map_err(|e| invalid("RSA private key", e))?);
        Self::from_pkcs8_der(&pkcs8)
    }

    /// The first private key in a PEM text, PKCS#1 or PKCS#8.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        blocks
            .iter()
            .find_map(|block| private_key_from_block(block).transpose())
            .unwrap_or(Err(KeyError::NotFound("private key")))
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn size_bytes(&self) -> usize {
        self.oaep.key_size_bytes()
    }

    /// PKCS#1 PEM (`RSA PRIVATE KEY`), as the controller stores `tls.key`.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(self.pkcs8_der.as_slice())
            .map_err(|e| invalid("RSA private key", e))?;
        let block = pem::Pem::new(PEM_PKCS1_PRIVATE, info.private_key.to_vec());
        Ok(Zeroizing::new(encode_pem(&block)))
    }

    /// PKCS#8 PEM (`PRIVATE KEY`).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let block = pem::Pem::new(PEM_PKCS8_PRIVATE, self.pkcs8_der.to_vec());
        Zeroizing::new(encode_pem(&block))
    }

    /// A 32-byte key derived from this private key for `purpose` (HMAC-SHA256 keyed by the
    /// PKCS#8 DER): lets the controller authenticate what it wrote without storing another secret.
    pub fn derive_secret(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.pkcs8_der);
        let tag = aws_lc_rs::hmac::sign(&key, purpose);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub(crate) fn oaep_decrypt(
        &self,
        ciphertext: &[u8],
        label: Option<&[u8]>,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.oaep.min_output_size()]);
        let len = self
            .oaep
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, label)
            .ok()?
            .len();
        out.truncate(len);
        Some(out)
    }
}

pub(crate) fn private_key_from_block(block: &pem::Pem) -> Result<Option<PrivateKey>, KeyError> {
    match block.tag() {
        PEM_PKCS1_PRIVATE => PrivateKey::from_pkcs1_der(block.contents()).map(Some),
        PEM_PKCS8_PRIVATE => PrivateKey::from_pkcs8_der(block.contents()).map(Some),
        _ => Ok(None),
    }
}

/// An X.509 certificate carrying a sealing key, as the controller serves at `/v1/cert.pem`.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    public: PublicKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| invalid("certificate", e))?;
        let spki = &cert.tbs_certificate.subject_pki;
        if spki.algorithm.algorithm.to_id_string() != pkcs1::ALGORITHM_OID.to_string() {
            return Err(KeyError::NotRsa);
        }
        let public = PublicKey::from_spki_der(spki.raw)?;
        let validity = cert.validity();
        Ok(Self {
            der: der.to_vec(),
            public,
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
        })
    }

    /// The first certificate in a PEM text.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        let block = blocks
            .iter()
            .find(|b| b.tag() == PEM_CERTIFICATE)
            .ok_or(KeyError::NotFound("certificate"))?;
        Self::from_der(block.contents())
    }

    /// A self-signed certificate shaped like Bitnami's controller makes: subject and issuer
    /// `CN=<cn>` (empty subject when `cn` is empty), CA, key usage encipherOnly, random 128-bit serial.
    pub fn self_signed(
        key: &PrivateKey,
        cn: &str,
        validity: std::time::Duration,
    ) -> Result<Self, KeyError> {
        let signer = rcgen::KeyPair::from_pem_and_sign_algo(
            key.to_pkcs8_pem().as_str(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| invalid("RSA private key", e))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if !cn.is_empty() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| KeyError::Generate)?;
        serial[0] &= 0x7f; // positive, below 2^127 like Go's rand.Int(2^128) most of the time
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let now = OffsetDateTime::now_utc();
        params.not_before = now;
        params.not_after = now + validity;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::EncipherOnly];
        let cert = params
            .self_signed(&signer)
            .map_err(|e| invalid("certificate", e))?;
        Self::from_der(cert.der())
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> String {
        encode_pem(&pem::Pem::new(PEM_CERTIFICATE, self.der.clone()))
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// SHA-256 of the certificate's DER, lower-case hex (as `openssl x509 -fingerprint -sha256`).
    pub fn sha256_fingerprint(&self) -> String {
        sha256_hex(&self.der)
    }

    /// Refuses an expired certificate, as `kubeseal` does before sealing with it.
    pub fn check_not_expired(&self, now: OffsetDateTime) -> Result<(), KeyError> {
        if now > self.not_after {
            return Err(KeyError::Expired(self.not_after.date().to_string()));
        }
        Ok(())
    }
}

/// A sealing public key and, when it came in a certificate, that certificate.
pub fn parse_sealing_key(text: &str) -> Result<(PublicKey, Option<Certificate>), KeyError> {
    let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
    for block in &blocks {
        match block.tag() {
            PEM_CERTIFICATE => {
                let cert = Certificate::from_der(block.contents())?;
                return Ok((cert.public_key().clone(), Some(cert)));
            }
            PEM_SPKI_PUBLIC => return Ok((PublicKey::from_spki_der(block.contents())?, None)),
            PEM_PKCS1_PUBLIC => return Ok((PublicKey::from_pkcs1_der(block.contents())?, None)),
            _ => {}
        }
    }
    Err(KeyError::NotFound(
        "certificate or public key (PEM CERTIFICATE, PUBLIC KEY or RSA PUBLIC KEY)",
    ))
}
