"""Task synthesis: tasks made from a repository by mutation methods, kept only when the validation rule holds."""
