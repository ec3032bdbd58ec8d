// Shared by lightnb's widgets (prepended to each widget's module by lightnb/ui/widget.py: an anywidget's
// module is loaded from a string, so it cannot import a sibling file).

// The Jupyter server's base URL, as the page knows it (JupyterLab, Notebook 7, Voila); null elsewhere.
function pageBaseUrl() {
  const element = document.getElementById("jupyter-config-data");
  if (!element) return null;
  try {
    const config = JSON.parse(element.textContent || "{}");
    return config.baseUrl || null;
  } catch (error) {
    return null;
  }
}

// Where to show a page: through jupyter-server-proxy ({base}proxy/{port}/{path}) when the page is served
// by this machine and a Jupyter server with the proxy serves the notebook; its direct URL otherwise.
export function frameUrl(tab, proxy) {
  if (tab.url == null) return null;
  const base = pageBaseUrl() || (proxy && proxy.prefix);
  if (proxy && proxy.enabled && tab.proxiable && tab.port != null && base) {
    return `${base.replace(/\/+$/, "")}/proxy/${tab.port}/${tab.path || ""}`;
  }
  return tab.url;
}

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") element.className = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value);
  }
  for (const child of children) if (child != null) element.append(child);
  return element;
}

