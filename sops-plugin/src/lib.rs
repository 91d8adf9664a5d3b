//! The SOPS file format, decrypted and encrypted with age keys.
