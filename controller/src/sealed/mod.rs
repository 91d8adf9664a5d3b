//! SealedSecret to Secret: the key manager, the reconciler and the HTTP endpoints.
