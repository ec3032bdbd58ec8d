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


// Whether the kernel behind a widget went away (restarted, shut down, died): the kernel connection of the
// widget manager says so ("restarting", "autorestarting", "dead", or disposed), and ipywidgets may mark the
// view "jupyter-widgets-disconnected". `onGone()` is called once, when that happens — the widget's model lives
// on in the page, but nothing it sends reaches a kernel any more (JupyterLab throws "Cannot send").
function watchKernel(model, el, onGone) {
  let gone = false;
  const markGone = () => {
    if (gone) return;
    gone = true;
    onGone();
  };
  const check = () => {
    if (el.classList.contains("jupyter-widgets-disconnected") || el.closest?.(".jupyter-widgets-disconnected")) {
      markGone();
    }
  };
  const onLive = () => setTimeout(check, 0); // after ipywidgets' own handler
  model.on("comm_live_update", onLive);
  let kernel = null;
  try {
    kernel = model.widget_manager?.kernel ?? null; // JupyterLab's widget manager: the notebook's kernel
  } catch (error) {
    kernel = null;
  }
  const DEAD = new Set(["restarting", "autorestarting", "dead"]);
  const onStatus = (_, status) => { if (DEAD.has(status)) markGone(); };
  const onDisposed = () => markGone();
  if (kernel && kernel.statusChanged?.connect) {
    kernel.statusChanged.connect(onStatus);
    kernel.disposed?.connect(onDisposed);
    if (kernel.isDisposed || DEAD.has(kernel.status)) setTimeout(markGone, 0);
  }
  setTimeout(check, 0);
  return {
    get gone() { return gone; },
    // A message to the kernel; a kernel that went away makes the view say so (never an uncaught error).
    send(message) {
      if (gone) return false;
      try {
        model.send(message);
        return true;
      } catch (error) {
        console.warn("lightnb: the kernel of this view is gone:", error);
        markGone();
        return false;
      }
    },
    stop() {
      model.off("comm_live_update", onLive);
      if (kernel && kernel.statusChanged?.disconnect) {
        kernel.statusChanged.disconnect(onStatus);
        kernel.disposed?.disconnect(onDisposed);
      }
    },
  };
}
