raise RuntimeError("this conftest raises at import")
