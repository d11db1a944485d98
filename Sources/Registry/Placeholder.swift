public enum RegistryPlaceholder {}
