// A link in the menu bar from each page to the same page in the other language. English is
// built into book/build/, the Chinese translation into book/build/zh-CN/ (see xtask/src/book.rs),
// so the two trees mirror each other and only the zh-CN/ prefix differs.
(function () {
    "use strict";
    var TRANSLATION = "zh-CN";
    var root = (typeof path_to_root === "string") ? path_to_root : "";
    var rootUrl = new URL(root || "./", window.location.href);
    var page = window.location.href.slice(rootUrl.href.length).split("#")[0];
    var inTranslation = (document.documentElement.lang || "").toLowerCase() === TRANSLATION.toLowerCase();
    var target = inTranslation
        ? new URL("../" + page, rootUrl)
        : new URL(TRANSLATION + "/" + page, rootUrl);

    var link = document.createElement("a");
    link.href = target.href;
    link.className = "language-switch";
    link.textContent = inTranslation ? "English" : "中文";
    link.title = inTranslation ? "Read this page in English" : "阅读本页的中文版";
    link.setAttribute("hreflang", inTranslation ? "en" : TRANSLATION);
    link.setAttribute("lang", inTranslation ? "en" : TRANSLATION);
    link.style.cssText = "font-size: 1.4rem; padding: 0 10px; text-decoration: none; " +
        "line-height: var(--menu-bar-height, 50px); color: var(--icons);";

    var bar = document.querySelector(".right-buttons") ||
        document.querySelector("#mdbook-menu-bar .right-buttons") ||
        document.querySelector("#menu-bar");
    if (bar) {
        bar.insertBefore(link, bar.firstChild);
    }
})();
