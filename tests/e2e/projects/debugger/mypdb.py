import pdb


class MyPdb(pdb.Pdb):
    """A pdb class of the project's own (``--pdbcls=mypdb:MyPdb``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prompt = "(MyPdb) "
