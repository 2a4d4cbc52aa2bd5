/** berth's version, for `berth --version` and the forges' User-Agent. Must match package.json's `version`. */
export const VERSION = '0.1.0';
