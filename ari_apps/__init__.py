"""ari_apps."""
