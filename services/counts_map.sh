# counts_map: bin the event lists in $events (one or more files, space-separated) into
# $counts_map (FITS image with a TAN WCS) and $counts_map_png (preview).
python - <<'PY'
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

env = os.environ
nx, ny, binsz = int(env["nxpix"]), int(env["nypix"]), float(env["binsz"])
emin, emax = float(env["emin"]), float(env["emax"])
if emin >= emax:
    sys.exit(f"emin ({emin} TeV) must be below emax ({emax} TeV)")

wcs = WCS(naxis=2)
wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
wcs.wcs.crval = [float(env["ra"]), float(env["dec"])]
wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
wcs.wcs.cdelt = [-binsz, binsz]
wcs.wcs.cunit = ["deg", "deg"]
wcs.wcs.radesys = "ICRS"

counts = np.zeros((ny, nx), dtype=np.int32)
obs_ids = []
for path in env["events"].split():
    with fits.open(path) as hdus:
        if "EVENTS" not in hdus:
            sys.exit(f"{path}: no EVENTS extension")
        table = hdus["EVENTS"].data
        obs_ids.append(str(hdus["EVENTS"].header.get("OBS_ID", "?")))
        keep = (table["ENERGY"] >= emin) & (table["ENERGY"] < emax)
        x, y = wcs.world_to_pixel_values(table["RA"][keep], table["DEC"][keep])
        ix, iy = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        np.add.at(counts, (iy[inside], ix[inside]), 1)

header = wcs.to_header()
header["BUNIT"] = ("count", "events per pixel")
header["EMIN"] = (emin, "[TeV] lowest energy kept")
header["EMAX"] = (emax, "[TeV] highest energy kept (exclusive)")
header["OBS_IDS"] = (" ".join(obs_ids), "observations binned")
header["CREATOR"] = "opus_min counts_map 1.0"
fits.PrimaryHDU(counts, header=header).writeto(env["counts_map"], checksum=True)

fig = plt.figure(figsize=(6, 5))
ax = fig.add_subplot(projection=wcs)
image = ax.imshow(counts, origin="lower", cmap="viridis")
ax.coords[0].set_axislabel("Right ascension (ICRS)")
ax.coords[1].set_axislabel("Declination (ICRS)")
ax.coords.grid(color="white", alpha=0.3, linestyle=":")
fig.colorbar(image, ax=ax, label="counts")
ax.set_title(f"Counts, {emin:g}-{emax:g} TeV, {int(counts.sum())} events")
fig.savefig(env["counts_map_png"], dpi=100, bbox_inches="tight")
print(f"{int(counts.sum())} events binned from {len(obs_ids)} event list(s)")
PY
