/** Static export served by remora-api from REMORA_WEB_DIR (see ../README). */
const nextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
};
export default nextConfig;
