"""Operations: key rotation, backup and restore (services behind `sanad kek`, `sanad backup`)."""
