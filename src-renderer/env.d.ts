/// <reference types="vite/client" />
declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

declare module 'shpjs' {
  /** Reads a zipped Shapefile into GeoJSON. */
  const shp: (data: ArrayBuffer) => Promise<unknown>;
  export default shp;
}
