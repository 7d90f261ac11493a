"""The Materials Project +U rule table agrees with pymatgen and with the shared sample's truth."""
import numpy as np

from monoculture.datasets.theory import MP_U_METALS, mp_hubbard_u, mp_hubbard_u_mask


def test_table_matches_pymatgen_mprelaxset():
    from pymatgen.io.vasp.sets import MPRelaxSet

    ldauu = MPRelaxSet.CONFIG["INCAR"]["LDAUU"]
    for anion, metals in MP_U_METALS.items():
        assert set(metals) == {m for m, u in ldauu[anion].items() if u}


def test_rule_and_vectorised_mask():
    assert mp_hubbard_u([26, 8]) and mp_hubbard_u([28, 9]) and not mp_hubbard_u([26, 16])
    assert not mp_hubbard_u([8, 22])  # Ti oxides are plain GGA in the MP scheme
    species = np.array([26, 8, 26, 16, 28, 9, 8, 22])
    offsets = np.array([0, 2, 4, 6, 8])
    assert mp_hubbard_u_mask(species, offsets).tolist() == [True, False, True, False]
