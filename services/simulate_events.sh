# simulate_events: write $events, a reproducible FITS event list.
# The parameters arrive as environment variables; Python reads them as data.
python - <<'PY'
import os

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits

env = os.environ
ra, dec = float(env["ra"]), float(env["dec"])
extent, fov = float(env["extent"]), float(env["fov_radius"])
n_src, n_bkg = int(env["n_source"]), int(env["n_background"])
seed, obs_id = int(env["seed"]), int(env["obs_id"])
rng = np.random.default_rng(seed)
centre = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
livetime = 1800.0


def power_law(n, index, emin=0.1, emax=100.0):
    """Energies (TeV) drawn from dN/dE ~ E^-index by inverting the cumulative distribution."""
    g = 1.0 - index
    x = rng.random(n)
    return (emin**g + x * (emax**g - emin**g)) ** (1.0 / g)


# Source: a 2-D Gaussian around the position (radius ~ Rayleigh, angle uniform).
src_sep = extent * np.sqrt(-2.0 * np.log1p(-rng.random(n_src))) if extent > 0 else np.zeros(n_src)
src = centre.directional_offset_by(rng.random(n_src) * 360 * u.deg, src_sep * u.deg)
# Background: uniform on the spherical cap of radius fov around the pointing (= the source).
cos_sep = 1.0 - rng.random(n_bkg) * (1.0 - np.cos(np.radians(fov)))
bkg = centre.directional_offset_by(rng.random(n_bkg) * 360 * u.deg, np.degrees(np.arccos(cos_sep)) * u.deg)

event_ra = np.concatenate([src.ra.deg, bkg.ra.deg])
event_dec = np.concatenate([src.dec.deg, bkg.dec.deg])
energy = np.concatenate([power_law(n_src, 2.5), power_law(n_bkg, 2.7)])
time = rng.random(n_src + n_bkg) * livetime
order = np.argsort(time)

columns = [
    fits.Column("TIME", "D", unit="s", array=time[order]),
    fits.Column("RA", "D", unit="deg", array=event_ra[order]),
    fits.Column("DEC", "D", unit="deg", array=event_dec[order]),
    fits.Column("ENERGY", "E", unit="TeV", array=energy[order]),
]
events = fits.BinTableHDU.from_columns(columns, name="EVENTS")
header = events.header
for key, value, comment in [
    ("HDUCLASS", "GADF", "format family"),
    ("HDUCLAS1", "EVENTS", "event list"),
    ("OBS_ID", obs_id, "observation identifier"),
    ("TELESCOP", "SIMULATED", "opus_min simulate_events"),
    ("RADESYS", "ICRS", "coordinate frame"),
    ("EQUINOX", 2000.0, "equinox"),
    ("RA_PNT", ra, "[deg] pointing right ascension"),
    ("DEC_PNT", dec, "[deg] pointing declination"),
    ("RA_OBJ", ra, "[deg] simulated source right ascension"),
    ("DEC_OBJ", dec, "[deg] simulated source declination"),
    ("TSTART", 0.0, "[s] start time"),
    ("TSTOP", livetime, "[s] stop time"),
    ("ONTIME", livetime, "[s] observation time"),
    ("LIVETIME", livetime, "[s] live time"),
    ("N_SRC", n_src, "simulated source events"),
    ("N_BKG", n_bkg, "simulated background events"),
    ("SEED", seed, "random seed"),
]:
    header[key] = (value, comment)
primary = fits.PrimaryHDU()
primary.header["CREATOR"] = "opus_min simulate_events 1.0"
fits.HDUList([primary, events]).writeto(env["events"], checksum=True)
print(f"{n_src} source and {n_bkg} background events written to {env['events']}")
PY
