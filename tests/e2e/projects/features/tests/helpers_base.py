class SharedTests:
    def test_shared(self):
        pass


def test_imported_function():
    pass
