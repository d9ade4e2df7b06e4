#!/bin/bash
# test script for gammapy_maps
echo "$RA $Dec $map_type" > map.fits
