// Every string of the page's interface, one table per language. zh-CN is the default.
export const STRINGS = {
  "zh-CN": {
    title: "城市一张图", search: "搜索", searchPlaceholder: "名称、地址或编码（如 天阳花园）",
    coords: "坐标", crsLonLat: "CGCS2000 经纬度", crsProjected: "投影坐标", crsGcj: "GCJ-02 (国内网络地图)",
    apiKey: "访问密钥", keyPrompt: "输入访问密钥（仅在本次会话中保存）", ok: "确定", cancel: "取消",
    clearKey: "清除密钥", keyActive: "已使用密钥", keyRejected: "密钥无效", keyNone: "未使用密钥（仅公开图层）",
    layers: "图层", tools: "分析工具", drawArea: "划定封闭区域", finishArea: "完成区域",
    drawHint: "在地图上点击区域顶点，然后点\"完成区域\"",
    searchResults: "搜索结果", identify: "点查", profile: "档案", impact: "影响分析",
    downloadGeojson: "下载 GeoJSON", downloadGpkg: "下载 GeoPackage", clear: "清除", events: "事件", eventsWaiting: "尚未接入事件流",
    eventsLive: "事件流已接入", eventNew: "新事件", eventDispatched: "已派单", eventOverdue: "已超时",
    noHits: "此处无要素", noResults: "未找到", showProfile: "查看档案", burst: "在此爆管", closeRoad: "封闭此路",
    related: "关联", serviceConnections: "服务管线", roadAccess: "道路出入口",
    valvesToClose: "需关闭阀门", isolatedPipes: "隔离管段", cutOffPipes: "断供管段", buildingsOut: "停水/停气建筑",
    closedRoads: "封闭道路", buildingsLost: "失去通行的建筑", buildingsDelayed: "绕行建筑", maxDetour: "最大绕行 (秒)",
    pipeBurst: "爆管分析", roadClosure: "封路分析", areaClosure: "区域封闭分析", warnings: "提示",
    buildings: "建筑", sensors: "传感器", roadsKm: "道路 (公里)", openEvents: "未结事件", district: "区",
    sensorsOnline: "传感器在线", legend: "图例", sensorStates: "传感器状态", detourHeat: "绕行热力 (绕行时间)", minutes: "分钟",
    states: { normal: "正常", alarm: "报警", offline: "离线", no_data: "无数据" },
    eventAcknowledged: "已确认", eventInProgress: "处置中", eventResolved: "已处置", eventClosed: "已关闭",
    eventTypes: { gas_leak: "燃气泄漏", pressure_drop: "水压骤降", pressure_surge: "水压突增", water_leak: "漏水",
      flooding: "积水内涝", low_water: "低水位", fire: "火情", road_blocked: "道路阻断", no_data: "设备离线", offline: "设备离线" },
    working: "分析中…", failed: "失败",
    categories: {
      spatio_temporal_base: "时空基础", resource_survey: "资源调查", planning_control: "规划管控",
      construction_project: "工程建设项目", public_thematic: "公共专题", iot_sensing: "物联感知",
    },
    kinds: { building: "建筑", road: "道路", pipe: "管线", valve: "阀门", sensor: "传感器", district: "行政区",
      grid: "网格", parcel: "地块", poi: "兴趣点", source: "水源/气源", water: "水系" },
  },
  en: {
    title: "City one map", search: "Search", searchPlaceholder: "Name, address or code",
    coords: "Coordinates", crsLonLat: "CGCS2000 lon/lat", crsProjected: "Projected CRS", crsGcj: "GCJ-02 (Chinese web maps)",
    apiKey: "API key", keyPrompt: "API key (kept for this session only)", ok: "OK", cancel: "Cancel",
    clearKey: "Forget key", keyActive: "Key in use", keyRejected: "Key rejected", keyNone: "No key (public layers only)",
    layers: "Layers", tools: "Analysis", drawArea: "Draw a closure area", finishArea: "Finish area",
    drawHint: "Click the area's corners on the map, then \"Finish area\"",
    searchResults: "Search results", identify: "Identify", profile: "Profile", impact: "Impact",
    downloadGeojson: "Download GeoJSON", downloadGpkg: "Download GeoPackage", clear: "Clear", events: "Events", eventsWaiting: "No event stream connected",
    eventsLive: "Event stream connected", eventNew: "New", eventDispatched: "Dispatched", eventOverdue: "Overdue",
    noHits: "Nothing here", noResults: "Nothing found", showProfile: "Profile", burst: "Burst here", closeRoad: "Close this road",
    related: "Related", serviceConnections: "Service pipes", roadAccess: "Road access",
    valvesToClose: "Valves to close", isolatedPipes: "Isolated pipes", cutOffPipes: "Cut-off pipes", buildingsOut: "Buildings without service",
    closedRoads: "Closed roads", buildingsLost: "Buildings cut off", buildingsDelayed: "Buildings delayed", maxDetour: "Longest detour (s)",
    pipeBurst: "Pipe burst", roadClosure: "Road closure", areaClosure: "Area closure", warnings: "Warnings",
    buildings: "buildings", sensors: "sensors", roadsKm: "road km", openEvents: "open events", district: "District",
    sensorsOnline: "sensors online", legend: "Legend", sensorStates: "Sensor state", detourHeat: "Detour heat (detour time)", minutes: "min",
    states: { normal: "Normal", alarm: "Alarm", offline: "Offline", no_data: "No data" },
    eventAcknowledged: "Acknowledged", eventInProgress: "In progress", eventResolved: "Resolved", eventClosed: "Closed",
    eventTypes: { gas_leak: "Gas leak", pressure_drop: "Pressure drop", pressure_surge: "Pressure surge", water_leak: "Water leak",
      flooding: "Flooding", low_water: "Low water", fire: "Fire", road_blocked: "Road blocked", no_data: "Sensor offline", offline: "Sensor offline" },
    working: "Working…", failed: "Failed",
    categories: {
      spatio_temporal_base: "Spatio-temporal base", resource_survey: "Resource survey", planning_control: "Planning control",
      construction_project: "Construction projects", public_thematic: "Public thematic", iot_sensing: "IoT sensing",
    },
    kinds: { building: "Buildings", road: "Roads", pipe: "Pipes", valve: "Valves", sensor: "Sensors", district: "Districts",
      grid: "Grid cells", parcel: "Parcels", poi: "Points of interest", source: "Sources", water: "Water" },
  },
};

let current = "zh-CN";

export function setLanguage(lang) {
  current = STRINGS[lang] ? lang : "zh-CN";
  document.documentElement.lang = current;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.title = t("title");
  return current;
}

export function language() { return current; }

export function t(key) {
  const table = STRINGS[current];
  return key.split(".").reduce((v, k) => (v && v[k] !== undefined ? v[k] : undefined), table) ?? key;
}
