# significance_map: Li & Ma significance of the counts in a top-hat of $radius around each pixel
# of $counts_map, against a background level estimated from the map with sigma clipping.
python - <<'PY'
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.stats import sigma_clipped_stats  # noqa: E402
from astropy.wcs import WCS  # noqa: E402
from astropy.wcs.utils import proj_plane_pixel_scales  # noqa: E402

env = os.environ
with fits.open(env["counts_map"]) as hdus:
    counts = np.asarray(hdus[0].data, dtype=float)
    header = hdus[0].header
wcs = WCS(header).celestial
radius_pix = float(env["radius"]) / float(np.mean(proj_plane_pixel_scales(wcs)))

# Top-hat kernel, then an FFT convolution with zero padding (no wrap-around).
r = int(np.ceil(radius_pix))
yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
kernel = (xx**2 + yy**2 <= radius_pix**2).astype(float)
shape = (counts.shape[0] + kernel.shape[0] - 1, counts.shape[1] + kernel.shape[1] - 1)
full = np.fft.irfft2(np.fft.rfft2(counts, shape) * np.fft.rfft2(kernel, shape), shape)
n_on = np.clip(np.rint(full[r : r + counts.shape[0], r : r + counts.shape[1]]), 0, None)

# Background per pixel from the whole map, the source clipped away.
mean, _, _ = sigma_clipped_stats(counts, sigma=3.0, maxiters=10)
n_pix = counts.size
n_off = max(mean, 1e-9) * n_pix
alpha = kernel.sum() / n_pix
excess = n_on - alpha * n_off
if env["method"] == "simple":
    significance = excess / np.sqrt(alpha * n_off)
else:
    with np.errstate(divide="ignore", invalid="ignore"):
        term_on = np.where(n_on > 0, n_on * np.log((1 + alpha) / alpha * n_on / (n_on + n_off)), 0.0)
        term_off = n_off * np.log((1 + alpha) * n_off / (n_on + n_off))
    significance = np.sign(excess) * np.sqrt(np.clip(2 * (term_on + term_off), 0, None))

out = wcs.to_header()
out["BUNIT"] = ("sigma", "significance")
out["RADIUS"] = (float(env["radius"]), "[deg] top-hat radius")
out["METHOD"] = (env["method"], "significance estimate")
out["BKGPIX"] = (float(mean), "background counts per pixel")
out["CREATOR"] = "opus_min significance_map 1.0"
fits.PrimaryHDU(significance.astype(np.float32), header=out).writeto(
    env["significance_map"], checksum=True
)

fig = plt.figure(figsize=(6, 5))
ax = fig.add_subplot(projection=wcs)
image = ax.imshow(significance, origin="lower", cmap="RdBu_r", vmin=-5, vmax=max(5, np.nanmax(significance)))
ax.coords[0].set_axislabel("Right ascension (ICRS)")
ax.coords[1].set_axislabel("Declination (ICRS)")
fig.colorbar(image, ax=ax, label="significance (sigma)")
ax.set_title(f"Significance ({env['method']}), peak {np.nanmax(significance):.1f} sigma")
fig.savefig(env["significance_map_png"], dpi=100, bbox_inches="tight")
print(f"peak significance {np.nanmax(significance):.2f}")
PY
