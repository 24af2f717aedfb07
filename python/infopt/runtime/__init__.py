"""infopt's runtime: InferenceSession over the native CPU executor."""
