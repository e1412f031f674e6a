raise RuntimeError("the root conftest raises at import")
