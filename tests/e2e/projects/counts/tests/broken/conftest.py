raise RuntimeError("this conftest fails to import")
