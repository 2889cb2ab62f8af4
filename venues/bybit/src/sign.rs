//! The v5 signatures. (Skeleton.)
