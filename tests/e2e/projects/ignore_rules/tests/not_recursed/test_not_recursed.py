def test_not_recursed():
    assert False, "norecursedirs leaves this directory out"
