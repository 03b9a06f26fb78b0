"""Items (民意件): submission, validation, photos, references."""
